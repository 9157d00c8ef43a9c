"""Delivery channels: each takes an alert and delivers it, or raises after its retries."""
