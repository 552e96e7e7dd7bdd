//! budgets queries. One fn per query.
