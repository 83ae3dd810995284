//! pcap captures with link type 302 (LINKTYPE_EDK2_MM).
