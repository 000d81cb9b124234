//! The `livestack` binary: the command line and its subcommands are the
//! `livestack` library's [`livestack::main`].

fn main() -> anyhow::Result<()> {
    livestack::main()
}
