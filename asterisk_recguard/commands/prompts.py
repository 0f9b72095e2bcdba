"""``recguard prompts build``: turn the shipped notice texts into WAV prompts."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import prompts
from ._common import add_command

HELP = """\
Synthesises the notice prompts from the texts shipped in config/prompts/<lang>/
with espeak-ng and converts them with sox to 8 kHz mono 16-bit WAV, the form
Asterisk plays directly. The files land in DIR/<lang>/recguard/<name>.wav;
point DIR at Asterisk's sounds directory (astsoundsdir, usually
/usr/share/asterisk/sounds) or copy them there. The dialplan plays
recguard/<name> in the channel's language.

The synthetic voice is a starting point. You may replace any prompt with a
recording of a real voice: keep the file name and record 8 kHz mono WAV
(sox can convert: sox take.wav -r 8000 -c 1 -b 16 evidence-v1.wav). If you
change what a notice says, give it a new id (evidence-v2) in the policy and
in the dialplan, so the ledger shows which wording each caller heard.

examples:
  recguard prompts build --to /usr/share/asterisk/sounds
  recguard prompts build --to /tmp/prompts --lang sl

needs: espeak-ng and sox (apt-get install espeak-ng sox).
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = add_command(subparsers, "prompts", "build the spoken notice prompts (espeak-ng + sox) for Asterisk",
                         HELP)
    actions = parser.add_subparsers(dest="prompts_action", metavar="ACTION", required=True)
    build = add_command(actions, "build", "write DIR/<lang>/recguard/<name>.wav for every shipped prompt text",
                        HELP, func=_build)
    build.add_argument("--to", required=True, type=Path, metavar="DIR", help="the sounds directory to write into")
    build.add_argument(
        "--lang",
        choices=sorted(prompts.VOICES),
        help="only this language (default: every language with texts)",
    )


def _build(args: argparse.Namespace) -> int:
    prompts.require_tools()
    for language, text_file in prompts.text_files(args.lang):
        target = prompts.prompt_dir(args.to, language) / f"{text_file.stem}.wav"
        prompts.build(text_file, target, language)
        print(f"{target}  {prompts.duration(target):5.1f} s")
    return 0
