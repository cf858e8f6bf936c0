//! p11agent
