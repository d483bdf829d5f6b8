//! Command traces (issue 16). Placeholder so the pcap writer compiles on
//! its own branch; the trace recorder's branch owns this file.

pub mod pcap;
