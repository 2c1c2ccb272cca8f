"""The whole product as a user drives it, on small settings: search -> build -> flash (emulator) ->
profile -> validate, through the real command line, on the built-in data."""
import json

import pytest
from conftest import need
from test_search_doubles import write_tiny_space

from edgeviz.cli import main


@pytest.mark.qemu
def test_search_build_flash_profile_validate(tmp_path, capsys):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    space = write_tiny_space(tmp_path)
    s, b = tmp_path / "search", tmp_path / "build"
    assert main(["search", "--budget", "64KB", "--space", str(space), "--epochs", "1", "--population", "4",
                 "--generations", "1", "-o", str(s), "--json", "--no-progress"]) == 0
    chosen = json.loads(capsys.readouterr().out)
    assert chosen["peak_sram"] <= 64 * 1024

    assert main(["build", str(s), "--target", "mps2-an500", "-o", str(b), "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    # what the search promised is what the firmware links
    assert built["peak_sram"] == chosen["peak_sram"]
    assert json.loads((b / "build.json").read_text())["elf_arena_bytes"] == chosen["peak_sram"]

    assert main(["flash", str(b)]) == 0
    capsys.readouterr()
    assert main(["profile", str(b), "--port", "emulator", "-n", "2", "--json"]) == 0
    prof = json.loads(capsys.readouterr().out)
    assert prof["unit"] == "instructions" and prof["end_to_end"]["median"] > 0
    assert len(prof["layers"]) == len(built.get("layers", prof["layers"]))
    assert (b / "latency.png").is_file()

    assert main(["validate", str(b), "--port", "emulator", "-n", "8", "--json"]) == 0
    val = json.loads(capsys.readouterr().out)
    assert val["bit_exact"] == val["n"] == 8
