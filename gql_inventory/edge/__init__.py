"""The HTTP edge: connection timeouts and caps, body limits, pages the app serves."""
