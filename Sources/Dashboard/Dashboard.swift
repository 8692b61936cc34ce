// Dashboard: the local web app over runs/ (live curves, samples, compare view, summaries) and chart rendering.
