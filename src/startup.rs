//! (in progress)
pub fn serve(_c: Option<&std::path::Path>, _p: Option<u16>, _d: Option<std::path::PathBuf>) -> anyhow::Result<()> { Ok(()) }
