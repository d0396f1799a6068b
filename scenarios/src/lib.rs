//! What is checked on a booted machine, paired with each format.
