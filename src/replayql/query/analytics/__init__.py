"""Analytics over the filter language: aggregates and time series, funnels, retention, paths, web vitals."""
