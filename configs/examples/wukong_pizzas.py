"""A plugin router ("apiexts"): a short, friendly JSON for Pizza objects under `/wukong/pizzas/`.

`POST /wukong/pizzas/ {"name": "margherita", "size": "large", "toppings": ["basil"]}` creates the full
`restaurant.wukong.com/v1alpha1` Pizza, which `kubectl get pizzas` lists; reads translate back.
The routes pass kapi's authentication and authorization; their docs are at `/wukong/docs`.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from kapi.plugins import Plugin, objects

GROUP, VERSION, RESOURCE = "restaurant.wukong.com", "v1alpha1", "pizzas"


class PizzaOrder(BaseModel):
    """A pizza as a customer says it."""

    name: str = Field(description="the order's name (the Pizza object's name)")
    size: str = Field("medium", description="small, medium or large")
    toppings: list[str] = Field(default_factory=list, description="topping names")
    cost: float | None = Field(None, description="what it costs, once the kitchen has priced it")


def to_pizza(order: PizzaOrder, namespace: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Pizza",
            "metadata": {"name": order.name, "namespace": namespace},
            "spec": {"size": order.size, "toppings": [{"name": t} for t in order.toppings]}}


def to_order(pizza: dict[str, Any]) -> PizzaOrder:
    spec = pizza.get("spec") or {}
    return PizzaOrder(name=pizza["metadata"]["name"], size=spec.get("size", "medium"),
                      toppings=[t["name"] for t in spec.get("toppings") or []],
                      cost=(pizza.get("status") or {}).get("cost"))


def make_router() -> Any:
    """Called on the first request under the prefix (FastAPI is imported only then)."""
    from fastapi import APIRouter, Depends

    from kapi.plugins import Objects

    router = APIRouter(prefix="/pizzas", tags=["pizzas"])

    @router.post("/", status_code=201, response_model=PizzaOrder)
    async def order(pizza: PizzaOrder, namespace: str = "default", api: Objects = Depends(objects)) -> PizzaOrder:
        return to_order(await api.create(GROUP, VERSION, RESOURCE, to_pizza(pizza, namespace), namespace))

    @router.get("/", response_model=list[PizzaOrder])
    async def menu(namespace: str = "default", api: Objects = Depends(objects)) -> list[PizzaOrder]:
        return [to_order(p) for p in await api.list(GROUP, VERSION, RESOURCE, namespace)]

    @router.get("/{name}", response_model=PizzaOrder)
    async def one(name: str, namespace: str = "default", api: Objects = Depends(objects)) -> PizzaOrder:
        return to_order(await api.get(GROUP, VERSION, RESOURCE, name, namespace))

    @router.delete("/{name}", response_model=PizzaOrder)
    async def cancel(name: str, namespace: str = "default", api: Objects = Depends(objects)) -> PizzaOrder:
        return to_order(await api.delete(GROUP, VERSION, RESOURCE, name, namespace))

    return router


plugin = Plugin(routers=[make_router])
