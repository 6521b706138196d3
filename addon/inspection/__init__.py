"""What a person reads, for both products: the log, the flow comment and marks, tool-call checks, the content views, export, telemetry; sessions/ groups flows into sessions and turns."""
