"""twilio_sim: a stand-in for Twilio (REST subset, signed webhooks) for local runs and tests."""
