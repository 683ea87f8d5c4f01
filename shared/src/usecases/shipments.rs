//! Recording a shipment or a tracking checkpoint.
