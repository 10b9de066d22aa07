"""``wcs demo``: a simulated shift from order intake to carrier allocation, with KPIs.

:mod:`demo.shift` starts every part of the system on embedded defaults, :mod:`demo.shop`
plans and places the orders, :mod:`demo.audit` checks the books against the simulated
floor and :mod:`demo.report` prints the KPI table.
"""
