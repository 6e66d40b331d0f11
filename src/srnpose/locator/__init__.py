"""The learned hand locator: its network and its training."""
