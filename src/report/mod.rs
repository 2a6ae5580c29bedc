//! Output for people and machines. `records` prints a decoded stream like
//! tshark's packet list (text, detail tree, or JSON lines).

pub mod records;
