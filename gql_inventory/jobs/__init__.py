"""Background jobs of the app process: the expiry sweeper, the pending-payment check, self-care."""
