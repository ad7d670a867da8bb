"""Call outcome notifier: one Google Sheets (or CSV) row per finished call."""
