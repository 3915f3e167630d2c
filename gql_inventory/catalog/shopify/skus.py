"""SKUs of an import: explicit `Variant SKU`s, derived ones for blank cells, and the
collisions that refuse it (the rule: `gql_inventory.catalog.shopify`)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

from sqlalchemy import any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import String

from gql_inventory.catalog.shopify.csvfile import MAX_KEY_LENGTH, SKU, ImportProblem
from gql_inventory.catalog.shopify.rows import ParsedProduct, ParsedVariant
from gql_inventory.models import Product, Variant

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def _slug(value: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")
    return slug or hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]


def derive_sku(handle: str, option_values: Sequence[str]) -> str:
    """The SKU of a variant whose `Variant SKU` is blank (rule: `gql_inventory.catalog.shopify`).

    ``derive_sku("classic-tee", ["Small", "Navy Blue"]) == "CLASSIC-TEE-SMALL-NAVY-BLUE"``;
    pass no values for a "Default Title" variant.
    """
    sku = "-".join([_slug(handle), *(_slug(v) for v in option_values)]).upper()
    if len(sku) > MAX_KEY_LENGTH:
        digest = hashlib.sha256(sku.encode("utf-8")).hexdigest()[:8].upper()
        sku = f"{sku[: MAX_KEY_LENGTH - 9].rstrip('-')}-{digest}"
    return sku


def assign_skus(products: dict[str, ParsedProduct], problems: list[ImportProblem]) -> None:
    """Set every variant's SKU; report duplicates and derived-SKU collisions."""
    explicit: dict[str, ParsedVariant] = {}
    for product in products.values():
        for variant in product.variants:
            if variant.explicit_sku is None:
                continue
            variant.sku = variant.explicit_sku
            first = explicit.get(variant.sku)
            if first is not None:
                problems.append(
                    ImportProblem(
                        variant.path,
                        variant.line,
                        f"duplicate SKU {variant.sku!r} (also on {first.path}:{first.line})",
                    )
                )
            else:
                explicit[variant.sku] = variant
    derived: dict[str, ParsedVariant] = {}
    for product in products.values():
        for variant in product.variants:
            if variant.explicit_sku is not None or not variant.options_valid:
                continue
            variant.sku = derive_sku(product.handle, variant.values)
            clash = explicit.get(variant.sku) or derived.get(variant.sku)
            if clash is not None:
                kind = "the explicit SKU" if clash.explicit_sku else "the SKU derived"
                problems.append(
                    ImportProblem(
                        variant.path,
                        variant.line,
                        f"{SKU} is blank and the derived SKU {variant.sku!r} equals {kind} "
                        f"on {clash.path}:{clash.line}; give this row a {SKU}",
                    )
                )
            else:
                derived[variant.sku] = variant


async def check_derived_skus_owner(
    session: AsyncSession, products: dict[str, ParsedProduct], problems: list[ImportProblem]
) -> None:
    """Refuse a derived SKU that already belongs to another product in the database."""
    wanted = {
        variant.sku: (product.handle, variant)
        for product in products.values()
        for variant in product.variants
        if variant.explicit_sku is None and variant.sku
    }
    if not wanted:
        return
    skus = bindparam("skus", list(wanted), type_=ARRAY(String()))
    rows = await session.execute(
        select(Variant.sku, Product.handle)
        .join(Product, Product.id == Variant.product_id)
        .where(Variant.sku == any_(skus))
    )
    for sku, owner in rows:
        handle, variant = wanted[sku]
        if owner != handle:
            problems.append(
                ImportProblem(
                    variant.path,
                    variant.line,
                    f"{SKU} is blank and the derived SKU {sku!r} already belongs to product "
                    f"{owner!r} in the database; give this row a {SKU}",
                )
            )
