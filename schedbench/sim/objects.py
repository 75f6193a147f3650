"""Object kinds that only the simulation writes: v1 ``Endpoints``.

Declared with the codec of :mod:`schedbench.model.codec` like the classes of
:mod:`schedbench.model.objects`, so an Endpoints object loads from and dumps to the same YAML
as Kubernetes' (``subsets[].addresses[].targetRef``, ``notReadyAddresses``, ``ports``).

Pods in schedbench have no IP addresses (``ip`` is the pod's ``status.podIP`` when a manifest
states one, else empty); an address is identified by its ``targetRef`` (the pod) and
``nodeName``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..model.codec import extra_field, kfield
from ..model.objects import KubeObject, ObjectMeta


@dataclass
class ObjectReference:
    """core/v1 ObjectReference (the pod behind an endpoint address)."""

    kind: str = kfield("")
    namespace: str = kfield("")
    name: str = kfield("")
    uid: str = kfield("")
    resource_version: str = kfield("")
    extra: dict = extra_field()


@dataclass
class EndpointAddress:
    ip: str = kfield("")
    hostname: str = kfield("")
    node_name: str | None = kfield(None)
    target_ref: ObjectReference | None = kfield(None)
    extra: dict = extra_field()

    @property
    def pod_key(self) -> str:
        """``namespace/name`` of the pod behind the address ("" if it has no targetRef)."""
        ref = self.target_ref
        return f"{ref.namespace}/{ref.name}" if ref is not None else ""


@dataclass
class EndpointPort:
    port: int = kfield(0, required=True)
    name: str = kfield("")
    protocol: str = kfield("TCP")
    app_protocol: str | None = kfield(None)
    extra: dict = extra_field()


@dataclass
class EndpointSubset:
    addresses: list[EndpointAddress] = kfield(default_factory=list)
    not_ready_addresses: list[EndpointAddress] = kfield(default_factory=list)
    ports: list[EndpointPort] = kfield(default_factory=list)
    extra: dict = extra_field()


@dataclass
class Endpoints(KubeObject):
    """v1 Endpoints: the addresses behind a Service, named like the Service."""

    KIND: ClassVar[str] = "Endpoints"

    metadata: ObjectMeta = kfield(default_factory=ObjectMeta, required=True)
    subsets: list[EndpointSubset] = kfield(default_factory=list)
    extra: dict = extra_field()

    def ready_addresses(self) -> list[EndpointAddress]:
        """Every ready address, subset by subset, in the stored order."""
        return [a for s in self.subsets for a in s.addresses]

    def not_ready_addresses(self) -> list[EndpointAddress]:
        return [a for s in self.subsets for a in s.not_ready_addresses]

    def ready_pod_keys(self) -> list[str]:
        """``namespace/name`` of the pods behind the ready addresses, without repeats (a pod
        appears once per subset it serves), in the stored order."""
        seen: dict[str, None] = {}
        for a in self.ready_addresses():
            seen.setdefault(a.pod_key, None)
        return list(seen)

    def not_ready_pod_keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for a in self.not_ready_addresses():
            seen.setdefault(a.pod_key, None)
        return list(seen)


SIM_KINDS: dict[str, type[KubeObject]] = {Endpoints.KIND: Endpoints}
