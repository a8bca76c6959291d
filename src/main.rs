//! The `sioedge` command line: `run`, `relay`, `check-config`, `devices`.

fn main() -> anyhow::Result<()> {
    Ok(())
}
