"""The console's panes, one module each: header, positions, margin buffer (gauge and chart),
pending, breakers and limits, event log, and the compact-layout view bar."""
