//! The tracking page's view counter: `views` on the shipment item (`M#<m>#S#<s>` / `SHIPMENT`),
//! no item of its own. One UpdateItem `ADD views :one`, with no read before it and no version
//! check; its only condition is that the shipment still exists, so a page opened while the
//! shipment is being erased cannot leave a stub item holding nothing but a count.

use super::{Store, StoreError, keys, n, update_held};
use crate::domain::MerchantId;
use crate::domain::ids::ShipmentId;
use crate::ports::shipments::ShipmentViews;

impl ShipmentViews for Store {
    async fn count_view(&self, m: &MerchantId, id: &ShipmentId) -> Result<bool, StoreError> {
        let update = self
            .update_item(&keys::shipment(m, id))
            .update_expression("ADD #views :one")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#views", keys::VIEWS)
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":one", n(1));
        update_held("UpdateItem shipment views", update).await
    }
}
