"""Recordings: fetch every forwarded call's recording from Twilio, store it, serve it, expire it."""
