"""Local Python functions that serve the order workflow's Task states as Lambda functions.

Run with: flowstate run examples/order_workflow.json --functions examples/order_functions.py \
          --input @examples/order_input.json

Each handler is ``handler(event, context)``, as on AWS Lambda. Names that are not Python
identifiers (Lambda names often contain ``-``) are bound through ``globals()``.
"""

from __future__ import annotations

from typing import Any

_STOCK = {"book": 12, "lamp": 3, "chair": 0}
_attempts: dict[str, int] = {}


class PaymentDeclined(Exception):
    pass


class PaymentGatewayTimeout(Exception):
    pass


def _verify_payment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    card = event["payment"]["card"]
    order_id = event["orderId"]
    if card == "declined":
        raise PaymentDeclined(f"card ending {card[-4:]} was declined")
    if card == "flaky":
        # A transient failure on the first attempt: the Retry on this state handles it.
        _attempts[order_id] = _attempts.get(order_id, 0) + 1
        if _attempts[order_id] == 1:
            raise PaymentGatewayTimeout("the payment gateway did not answer in time")
    amount = sum(item["price"] * item["quantity"] for item in event["items"])
    return {"paymentId": f"pay-{order_id}", "amount": round(amount, 2), "status": "APPROVED"}


def _check_inventory(event: dict[str, Any], context: Any) -> dict[str, Any]:
    missing = [i["sku"] for i in event["items"] if _STOCK.get(i["sku"], 0) < i["quantity"]]
    return {"available": not missing, "missing": missing}


def _send_confirmation(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"sent": True, "to": event["email"], "message": event["message"]}


def _record_order(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"recordId": f"rec-{event['orderId']}", "stored": True}


globals()["verify-payment"] = _verify_payment
globals()["check-inventory"] = _check_inventory
globals()["send-confirmation"] = _send_confirmation
globals()["record-order"] = _record_order
