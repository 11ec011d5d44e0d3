"""Transports between the telephone network and the call flow: Asterisk (FastAGI, AMI)."""
