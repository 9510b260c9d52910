"""retail: the merchant's raw-data model, validated loading, CSV import and CDNOW.

Owner side only: nothing on the hub side imports this package's loaders.
"""

from retail.cdnow import CdnowReport, cdnow_merchant, cdnow_path, write_cdnow_world
from retail.importer import MappingSpec, import_csv, read_mapping
from retail.load import LoadReport, TableReport, load_merchant, load_world
from retail.merchant import (
    Merchant,
    MerchantInfo,
    World,
    WorldInfo,
    read_merchant_info,
    read_world,
    write_merchant,
    write_merchant_info,
    write_world_info,
)
from retail.schema import ARMS, CHANNELS, MERCHANT_TYPES, REGIONS, TABLE_FILES, TIERS

__all__ = [
    "ARMS",
    "CHANNELS",
    "MERCHANT_TYPES",
    "REGIONS",
    "TABLE_FILES",
    "TIERS",
    "CdnowReport",
    "LoadReport",
    "MappingSpec",
    "Merchant",
    "MerchantInfo",
    "TableReport",
    "World",
    "WorldInfo",
    "cdnow_merchant",
    "cdnow_path",
    "import_csv",
    "load_merchant",
    "load_world",
    "read_mapping",
    "read_merchant_info",
    "read_world",
    "write_cdnow_world",
    "write_merchant",
    "write_merchant_info",
    "write_world_info",
]
