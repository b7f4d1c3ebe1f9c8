//! The SM-DS server and lab clients (see issues 3 and 4).
