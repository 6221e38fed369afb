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
        // Datasets
        foreach (var dataset in Datasets.DatasetAssets.All()) AssetCatalog.Register(dataset);
    }
}
