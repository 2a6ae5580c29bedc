//! Output for people and machines. `records` prints decoded streams like
//! tshark's packet list (text, detail tree, or JSON lines); `summary` is the
//! capture summary of `migscope -r`; `export` writes a session direction's
//! reassembled bytes.

pub mod export;
pub mod records;
pub mod summary;
pub mod timeline;
