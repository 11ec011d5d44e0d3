"""The web app: Twilio webhooks, prompt audio, and later the agents' and supervisors' pages."""
