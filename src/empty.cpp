// Placeholder translation unit for components that have no sources yet.
