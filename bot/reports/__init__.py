"""Reports people look at: the progress chart, the bulletin image, calendars."""
