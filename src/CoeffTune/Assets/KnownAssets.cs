namespace CoeffTune.Assets;

/// <summary>Registers every model and dataset the library can fetch. Idempotent.</summary>
public static class KnownAssets
{
    private static bool done;

    public static void EnsureRegistered()
    {
        if (done) return;
        done = true;
        // Models
        AssetCatalog.Register(Checkpoints.SentenceTransformerAsset.MiniLM);
        AssetCatalog.Register(Checkpoints.SentenceTransformerAsset.ArcticXs);
        // Datasets
        foreach (var dataset in Datasets.DatasetAssets.All()) AssetCatalog.Register(dataset);
    }
}
