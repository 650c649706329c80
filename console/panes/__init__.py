"""The console's panes, one module each: header, positions, margin buffer (gauge and chart),
pending, breakers and limits, event log (and its newest lines for the condensed overview), and
the view bar."""
