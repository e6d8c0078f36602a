fn main() -> anyhow::Result<()> {
    spoor_bin::main::<spoor_bin::IngesterCli>()
}
