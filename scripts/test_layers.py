"""The layer rules of the shared crate hold, and the checker finds what it is meant to find."""

import tempfile
import unittest
from pathlib import Path

import layers

ROOT = Path(__file__).resolve().parent.parent / "shared" / "src"


def tree(files: dict[str, str]) -> Path:
    root = Path(tempfile.mkdtemp())
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


class Layers(unittest.TestCase):
    def test_the_shared_crate_has_no_circle_and_keeps_its_layers(self):
        self.assertEqual(layers.violations(ROOT), [])

    def test_a_circle_between_sibling_modules_is_found(self):
        root = tree({
            "lib.rs": "pub mod store;\n",
            "store/mod.rs": "pub mod claims;\npub mod shipments;\n",
            "store/claims.rs": "use super::shipments::put;\n",
            "store/shipments.rs": "use super::claims::Claim;\n",
        })
        self.assertEqual(
            layers.violations(root),
            ["import circle: store::claims ↔ store::shipments"],
        )

    def test_a_circle_through_a_parent_module_is_found(self):
        root = tree({
            "lib.rs": "pub mod config;\npub mod token;\n",
            "config.rs": "use crate::token::SigningKey;\n",
            "token.rs": "fn f(c: &crate::config::Config) {}\n",
        })
        self.assertEqual(layers.violations(root), ["import circle: config ↔ token"])

    def test_the_domain_may_not_import_an_adapter_but_tests_and_comments_may_name_one(self):
        root = tree({
            "lib.rs": "pub mod adapters;\npub mod domain;\n",
            "adapters/mod.rs": "pub mod store;\n",
            "adapters/store.rs": "use crate::domain::Order;\n",
            "domain/mod.rs": (
                "// see crate::adapters::store\n"
                "pub struct Order;\n"
                "#[cfg(test)]\nmod tests { use crate::adapters::store; }\n"
            ),
        })
        self.assertEqual(layers.violations(root), [])
        (root / "domain/mod.rs").write_text(
            "use crate::adapters::store::Item;\npub struct Order;\n", encoding="utf-8"
        )
        self.assertIn("layer: domain imports adapters::store", layers.violations(root))


if __name__ == "__main__":
    unittest.main()
