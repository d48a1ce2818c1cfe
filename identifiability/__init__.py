"""The theorem as code (numpy/scipy/sympy; never imports torch).

Filled by the identifiability issue: assumption predicates A1-A7, the equivalence class, exact and
numeric checks, counterexample builders and hypothesis strategies. See DESIGN.md section 1.
"""
