"""The HTTP edge: body limits, pages the app serves (GraphiQL, /admin)."""
