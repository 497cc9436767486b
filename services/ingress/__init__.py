"""ingress: the Twilio webhook edge (signature check, webhook -> event, TwiML)."""
