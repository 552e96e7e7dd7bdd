//! keys queries. One fn per query.
