"""Print YAML files as JSON, for tests/deploy.rs: [{"file": PATH, "documents": [...]}, ...].

Every document of every file, in order (multi-document files split on `---`; merge keys `<<:`
resolved, as PyYAML's safe loader does). A file that is not YAML exits 1 with one line naming it.
"""

import json
import sys

import yaml


def main() -> int:
    out = []
    for path in sys.argv[1:]:
        try:
            with open(path, encoding="utf-8") as f:
                docs = list(yaml.safe_load_all(f))
        except (OSError, yaml.YAMLError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 1
        out.append({"file": path, "documents": docs})
    json.dump(out, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
