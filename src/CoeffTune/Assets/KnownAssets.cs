namespace CoeffTune.Assets;

/// <summary>Registers every model and dataset the library can fetch. Idempotent and thread-safe.</summary>
public static class KnownAssets
{
    private static readonly Lazy<bool> registered = new(() =>
    {
        // Models
        AssetCatalog.Register(Models.SentenceTransformerAsset.MiniLM);
        AssetCatalog.Register(Models.SentenceTransformerAsset.ArcticXs);
        foreach (var tokenizer in Datasets.TokenizerAssets.All()) AssetCatalog.Register(tokenizer);
        // Datasets
        foreach (var dataset in Datasets.DatasetAssets.All()) AssetCatalog.Register(dataset);
        return true;
    });

    public static void EnsureRegistered() => _ = registered.Value;
}
