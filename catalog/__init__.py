"""The ground floor: what hardware and models are, and the roofline that relates them.

Every other stage imports this package and it imports none of them: the fleet simulator builds
its replicas from it, attribution takes its prefill and decode weights from it, and the what-if
planner predicts routes with it. Every number carries its public source
(:class:`~wattledger.catalog.specs.Sourced`).

* :mod:`wattledger.catalog.specs` -- the catalog schema and loader (``data/*.toml``);
* :mod:`wattledger.catalog.roofline` -- the roofline performance and power model of a replica.
"""

from wattledger.catalog.specs import Catalog, DeviceSpec, ModelSpec, load_catalog

__all__ = ["Catalog", "DeviceSpec", "ModelSpec", "load_catalog"]
