"""The example photo `mugpos analyze --example` uses: coffee.png, a cup of coffee on a saucer,
600x400, CC0 (photographer Rachel Michetti; it ships with scikit-image as `skimage.data.coffee()`).
The only data file in the package."""
