"""asterisk-recguard: lawful call recording for Asterisk.

Listens to an existing Asterisk over ARI, decides for each call whether
recording has a legal basis, drives MixMonitor through AMI accordingly, and
logs every decision.
"""

__version__ = "0.1.0"
