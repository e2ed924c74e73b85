"""``stack_params.py driver-zip``: the driver Lambda's package, the engine plus its dependencies' wheels unpacked at
the zip's root (the Lambda runtime has no awscrt), built the same way every time."""

from __future__ import annotations

import zipfile

from infra_testlib import REPO


def _wheel(path, files: dict[str, str]) -> str:
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return str(path)


def test_the_zip_holds_the_engine_and_the_unpacked_wheels_reproducibly(stack_params_module, tmp_path):
    wheels = [
        _wheel(tmp_path / "nativelib-1.0-cp311-abi3-manylinux2014_x86_64.whl",
               {"nativelib/__init__.py": "", "nativelib/_native.abi3.so": "\x7fELF",
                "nativelib-1.0.dist-info/METADATA": "Name: nativelib\n"}),
        _wheel(tmp_path / "purelib-2.0-py3-none-any.whl", {"purelib.py": "VALUE = 2\n"}),
    ]
    package = REPO / "worker" / "mxtransfer_worker"
    first, key = stack_params_module.driver_zip(str(package), str(tmp_path / "one"), wheels)
    second, same_key = stack_params_module.driver_zip(str(package), str(tmp_path / "two"), list(reversed(wheels)))

    assert key == same_key and open(first, "rb").read() == open(second, "rb").read()
    names = zipfile.ZipFile(first).namelist()
    assert names == sorted(names)
    assert {"nativelib/_native.abi3.so", "nativelib-1.0.dist-info/METADATA", "purelib.py",
            "mxtransfer_worker/lambda_driver.py", "mxtransfer_worker/crt_copy.py"} <= set(names)
    assert not [name for name in names if "__pycache__" in name or name.endswith((".pyc", "/"))]
    without_wheels, other_key = stack_params_module.driver_zip(str(package), str(tmp_path / "three"))
    assert other_key != key and "purelib.py" not in zipfile.ZipFile(without_wheels).namelist()
