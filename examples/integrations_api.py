"""The seed's integration examples, run as written with `engine.` imports.

Set EXAMPLE_API_URL to point the "custom_api" integration somewhere else than the
placeholder api.example.com, e.g. at the test server that ships with the tests:

    python -m tests.support.http_server &
    EXAMPLE_API_URL=http://127.0.0.1:8765/v1 python examples/integrations_api.py
"""

import asyncio
import os

from engine.integrations import (
    DataFormat,
    DataMapping,
    IntegrationConfig,
    IntegrationManager,
    IntegrationType,
)

API_URL = os.environ.get("EXAMPLE_API_URL", "https://api.example.com/v1")

# -- Advanced Integration Usage -----------------------------------------------------------------

# Initialize integration manager
manager = IntegrationManager()

# Add custom integration
config = IntegrationConfig(
    name="custom_api",
    type=IntegrationType.API_REST,
    base_url=API_URL,
    api_key="your_api_key",
    headers={"Authorization": "Bearer your_token"},
    timeout=30,
    retry_count=3,
    rate_limit=100,
    data_format=DataFormat.JSON,
)
manager.add_integration(config)

# Add data mapping
mapping = DataMapping(
    source_field="sku",
    target_field="product_id",
    transformation=lambda x: f"PROD_{x}",
    required=True,
)
manager.add_data_mapping("custom_api", mapping)


# Add webhook handler
def webhook_handler(data):
    print(f"Webhook received: {data}")
    # Process webhook data
    return data


manager.add_webhook_handler("webhook_receiver", webhook_handler)


# Send data to integration
async def send_data():
    await manager.start()

    test_data = {"sku": "TEST001", "quantity": 100, "price": 29.99}

    try:
        event = await manager.send_data("custom_api", "/products", test_data)
        print(f"Data sent: {event.event_id} - Status: {event.status}")
    except Exception as e:
        print(f"Error: {e}")

    await manager.stop()


# Run async function
asyncio.run(send_data())

# Get integration status
status = manager.get_integration_status("custom_api")
print(f"Integration Status: {status}")

# Generate integration report
report = manager.generate_integration_report()
print(f"Integration Report: {report}")

# -- Data Transformation Examples ---------------------------------------------------------------

# Simple field mapping
mapping1 = DataMapping(source_field="sku", target_field="product_id", required=True)

# Transformation with function
mapping2 = DataMapping(
    source_field="price",
    target_field="cost",
    transformation=lambda x: x * 1.2,  # Add 20% markup
    required=True,
)

# Default value mapping
mapping3 = DataMapping(
    source_field="category", target_field="product_type", default_value="General", required=False
)

# -- Integration Manager Configuration ----------------------------------------------------------

# Customize integration manager
manager = IntegrationManager()

# Add multiple integrations
integrations = [
    IntegrationConfig(
        name="shopify",
        type=IntegrationType.API_REST,
        base_url="https://your-shop.myshopify.com/admin/api/2023-10",
        api_key="your_api_key",
        rate_limit=200,
    ),
    IntegrationConfig(
        name="quickbooks",
        type=IntegrationType.API_REST,
        base_url="https://sandbox-quickbooks.api.intuit.com/v3",
        api_key="your_consumer_key",
        secret_key="your_consumer_secret",
        rate_limit=100,
    ),
    IntegrationConfig(
        name="webhook_receiver",
        type=IntegrationType.WEBHOOK,
        base_url="https://your-domain.com",
        webhook_url="https://your-domain.com/webhook/inventory",
        webhook_secret="your_webhook_secret",
    ),
]

for config in integrations:
    manager.add_integration(config)

# Add mappings to integration
manager.add_data_mapping("shopify", mapping1)
manager.add_data_mapping("shopify", mapping2)
manager.add_data_mapping("shopify", mapping3)

print(manager.transform("shopify", {"sku": "A1", "price": 10.0}))
print(f"Integrations configured: {sorted(manager.integrations)}")
