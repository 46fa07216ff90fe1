"""Real HTTP servers on 127.0.0.1 that play the services the bot talks to."""
