"""HTML reports: the toolkit, the run report and the comparison report."""
