"""One training step per model family, with everything that must survive a resume.

- SARDINet family: masked MAE (L1) on [0, 1] targets, Adam (betas 0.9, 0.999), a constant
  learning rate (the paper's 1e-5 in config/paper.yaml).
- pix2pix, as the reference implementation (pytorch-CycleGAN-and-pix2pix) trains it: vanilla GAN
  loss (BCE with logits), L1 weight 100, discriminator loss halved, discriminator updated
  first; Adam betas (0.5, 0.999); learning rate constant over the first half of the epochs and
  linearly decayed to zero over the second half; images in [-1, 1].
- CycleGAN, likewise: LSGAN (MSE), cycle weight 10 each way, identity weight 0.5 (x 10), image
  pools of 50, generators updated before discriminators.

Masked optical pixels (snow, clouds) are excluded from every L1, cycle and identity term on the
optical side. Wherever a real optical image is an input (the discriminators' real examples,
CycleGAN's identity and backward cycle), its masked pixels are replaced by the generator's own
detached translation, so a hole neither tells real from fake nor leaks into a gradient: a choice
of this project, stated here, that the reference code needs no equivalent of.

Validation and prediction run every network in eval mode (BatchNorm running statistics, no
dropout), unlike the reference's default test mode, so predictions are deterministic.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from pipeline.models import OUTPUT_RANGE, build
from pipeline.training.checkpoint import translator_of
from pipeline.training.losses import gan_loss, masked_l1

SARDINET_FAMILY = ("sardinet", "sardinet_early", "sardinet_late", "sardinet_intermediate")
#: Smallest input side each model accepts (pix2pix's unet_256 downsamples 8 times).
MIN_INPUT_SIZE = {"pix2pix": 256, "cyclegan": 16, **{m: 8 for m in SARDINET_FAMILY}}


@dataclass(frozen=True)
class Hyper:
    """What a trainer needs from the training parameters."""

    lr: float
    epochs: int
    seed: int


class ImagePool:
    """The reference history of generated images (Shrivastava et al. 2017) that discriminators see.

    Until ``size`` images are held, each new image is stored and returned; then, with
    probability 1/2, a stored image is returned and replaced by the new one. Random draws come
    from the pool's own generator, whose state is checkpointed with the images.
    """

    def __init__(self, size: int, seed: int):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(1, generator=self.generator).item() > 0.5:
                k = int(torch.randint(0, self.size, (1,), generator=self.generator).item())
                out.append(self.images[k].clone())
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.cat(out)

    def state_dict(self) -> dict:
        return {"images": [i.cpu() for i in self.images], "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.images = [i.to(device) for i in state["images"]]
        self.generator.set_state(state["generator"])


def linear_decay(epochs: int):
    """Reference 'linear' policy: constant for the first half of the epochs, then linearly to zero."""
    decay = epochs // 2
    keep = epochs - decay

    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - keep) / float(decay + 1)

    return factor


class Trainer:
    """Base: the model container, its optimisers and schedulers, device and precision handling."""

    def __init__(self, model_name: str, hyper: Hyper, device: torch.device, amp: bool = False,
                 compile_model: bool = False):
        self.model_name = model_name
        self.hyper = hyper
        self.device = device
        self.amp = amp and device.type == "cuda"
        self.channels_last = device.type == "cuda"
        self.model = build(model_name).to(device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.in_channels = int(self.model.in_channels)
        self.low, self.high = OUTPUT_RANGE[model_name]
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.compile_model = compile_model

    # --- helpers ---------------------------------------------------------------------------------
    def autocast(self):
        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, : self.in_channels]
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def to_model_range(self, y01: torch.Tensor) -> torch.Tensor:
        return y01 * (self.high - self.low) + self.low

    def to_unit(self, y: torch.Tensor) -> torch.Tensor:
        return ((y.float() - self.low) / (self.high - self.low)).clamp(0.0, 1.0)

    @property
    def translator(self) -> nn.Module:
        """The network that maps inputs to optical images (what evaluation loads)."""
        return translator_of(self.model)

    def maybe_compile(self, module: nn.Module):
        return torch.compile(module) if self.compile_model else module

    # --- interface -------------------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y01: torch.Tensor, valid: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def translate(self, x: torch.Tensor) -> torch.Tensor:
        """Optical prediction in [0, 1] (float32), eval mode."""
        net = self.translator
        was_training = net.training
        net.eval()
        with self.autocast():
            out = net(self.prepare(x))
        net.train(was_training)
        return self.to_unit(out)

    def end_epoch(self) -> None:
        for s in self.schedulers.values():
            s.step()

    @property
    def lr(self) -> float:
        opt = next(iter(self.optimizers.values()))
        return float(opt.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        self.load_extra_state(state["extra"])

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass


class SardinetTrainer(Trainer):
    """SARDINet and its DEM fusions: masked MAE, Adam, constant learning rate."""

    def __init__(self, model_name: str, hyper: Hyper, device: torch.device, **kwargs):
        super().__init__(model_name, hyper, device, **kwargs)
        self.forward = self.maybe_compile(self.model)
        self.optimizers["model"] = torch.optim.Adam(self.model.parameters(), lr=hyper.lr)

    def train_step(self, x, y01, valid):
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        with self.autocast():
            pred = self.forward(self.prepare(x))
        loss = masked_l1(pred.float(), y01, valid)
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach())}


def _requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class Pix2PixTrainer(Trainer):
    """pix2pix: conditional GAN (BCE) + 100 x masked L1; discriminator first, its loss halved."""

    lambda_l1 = 100.0

    def __init__(self, model_name: str, hyper: Hyper, device: torch.device, **kwargs):
        super().__init__(model_name, hyper, device, **kwargs)
        g, d = self.model.generator, self.model.discriminator
        self.g, self.d = self.maybe_compile(g), self.maybe_compile(d)
        betas = (0.5, 0.999)
        self.optimizers["generator"] = torch.optim.Adam(g.parameters(), lr=hyper.lr, betas=betas)
        self.optimizers["discriminator"] = torch.optim.Adam(d.parameters(), lr=hyper.lr, betas=betas)
        for k, o in self.optimizers.items():
            self.schedulers[k] = torch.optim.lr_scheduler.LambdaLR(o, linear_decay(hyper.epochs))

    def train_step(self, x, y01, valid):
        x = self.prepare(x)
        y = self.to_model_range(y01)
        opt_g, opt_d = self.optimizers["generator"], self.optimizers["discriminator"]
        with self.autocast():
            fake = self.g(x)
        fake = fake.float()
        # discriminator: real pairs (masked pixels filled with the detached fake) against fake pairs
        _requires_grad([self.model.discriminator], True)
        opt_d.zero_grad(set_to_none=True)
        real = torch.where(valid.expand_as(y), y, fake.detach())
        with self.autocast():
            loss_d_fake = gan_loss(self.d(torch.cat([x, fake.detach()], 1)).float(), False, "vanilla")
            loss_d_real = gan_loss(self.d(torch.cat([x, real], 1)).float(), True, "vanilla")
        loss_d = 0.5 * (loss_d_fake + loss_d_real)
        loss_d.backward()
        opt_d.step()
        # generator: fool the discriminator, stay close to the valid target pixels
        _requires_grad([self.model.discriminator], False)
        opt_g.zero_grad(set_to_none=True)
        with self.autocast():
            loss_g_gan = gan_loss(self.d(torch.cat([x, fake], 1)).float(), True, "vanilla")
        loss_g_l1 = masked_l1(fake, y, valid)
        loss_g = loss_g_gan + self.lambda_l1 * loss_g_l1
        loss_g.backward()
        opt_g.step()
        _requires_grad([self.model.discriminator], True)
        return {"loss": float(loss_g_l1.detach()) / (self.high - self.low), "loss_g": float(loss_g.detach()),
                "loss_d": float(loss_d.detach())}


class CycleGANTrainer(Trainer):
    """CycleGAN: LSGAN, cycle 10 each way, identity 0.5, image pools of 50; optical-side terms masked."""

    lambda_cycle = 10.0
    lambda_identity = 0.5
    pool_size = 50

    def __init__(self, model_name: str, hyper: Hyper, device: torch.device, **kwargs):
        super().__init__(model_name, hyper, device, **kwargs)
        m = self.model
        self.g_ab, self.g_ba = self.maybe_compile(m.generator_ab), self.maybe_compile(m.generator_ba)
        self.d_a, self.d_b = self.maybe_compile(m.discriminator_a), self.maybe_compile(m.discriminator_b)
        betas = (0.5, 0.999)
        self.optimizers["generators"] = torch.optim.Adam(
            list(m.generator_ab.parameters()) + list(m.generator_ba.parameters()), lr=hyper.lr, betas=betas)
        self.optimizers["discriminators"] = torch.optim.Adam(
            list(m.discriminator_a.parameters()) + list(m.discriminator_b.parameters()), lr=hyper.lr, betas=betas)
        for k, o in self.optimizers.items():
            self.schedulers[k] = torch.optim.lr_scheduler.LambdaLR(o, linear_decay(hyper.epochs))
        self.pool_a = ImagePool(self.pool_size, hyper.seed + 101)
        self.pool_b = ImagePool(self.pool_size, hyper.seed + 202)

    def train_step(self, x, y01, valid):
        m = self.model
        a = self.to_model_range(self.prepare(x))  # SAR + DEM domain, [-1, 1]
        b = self.to_model_range(y01)  # optical domain, [-1, 1]
        opt_g, opt_d = self.optimizers["generators"], self.optimizers["discriminators"]
        lc, li = self.lambda_cycle, self.lambda_identity
        # generators
        _requires_grad([m.discriminator_a, m.discriminator_b], False)
        opt_g.zero_grad(set_to_none=True)
        with self.autocast():
            fake_b = self.g_ab(a)
            # masked optical pixels hold no information: wherever the optical domain is an input
            # (identity, backward cycle, discriminator), they take the current translation's value
            b = torch.where(valid.expand_as(b), b, fake_b.detach().float())
            rec_a = self.g_ba(fake_b)
            fake_a = self.g_ba(b)
            rec_b = self.g_ab(fake_a)
            idt_b = self.g_ab(b)
            idt_a = self.g_ba(a)
            loss_gan_ab = gan_loss(self.d_b(fake_b).float(), True, "lsgan")
            loss_gan_ba = gan_loss(self.d_a(fake_a).float(), True, "lsgan")
        all_valid = torch.ones_like(valid)
        loss_cycle_a = masked_l1(rec_a.float(), a, all_valid) * lc
        loss_cycle_b = masked_l1(rec_b.float(), b, valid) * lc
        loss_idt_b = masked_l1(idt_b.float(), b, valid) * lc * li
        loss_idt_a = masked_l1(idt_a.float(), a, all_valid) * lc * li
        loss_g = loss_gan_ab + loss_gan_ba + loss_cycle_a + loss_cycle_b + loss_idt_a + loss_idt_b
        loss_g.backward()
        opt_g.step()
        # discriminators (real optical with masked pixels filled by the detached fake)
        _requires_grad([m.discriminator_a, m.discriminator_b], True)
        opt_d.zero_grad(set_to_none=True)
        fake_b, fake_a = fake_b.detach().float(), fake_a.detach().float()
        with self.autocast():
            loss_d_b = 0.5 * (gan_loss(self.d_b(b).float(), True, "lsgan")
                              + gan_loss(self.d_b(self.pool_b.query(fake_b)).float(), False, "lsgan"))
            loss_d_a = 0.5 * (gan_loss(self.d_a(a).float(), True, "lsgan")
                              + gan_loss(self.d_a(self.pool_a.query(fake_a)).float(), False, "lsgan"))
        (loss_d_a + loss_d_b).backward()
        opt_d.step()
        with torch.no_grad():
            l1 = masked_l1(fake_b, b, valid) / (self.high - self.low)
        return {"loss": float(l1), "loss_g": float(loss_g.detach()), "loss_d": float((loss_d_a + loss_d_b).detach())}

    def extra_state(self) -> dict:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.pool_a.load_state_dict(state["pool_a"], self.device)
        self.pool_b.load_state_dict(state["pool_b"], self.device)


def make_trainer(model_name: str, hyper: Hyper, device: torch.device, amp: bool = False,
                 compile_model: bool = False) -> Trainer:
    """The trainer of a registered model."""
    cls = SardinetTrainer if model_name in SARDINET_FAMILY else {
        "pix2pix": Pix2PixTrainer, "cyclegan": CycleGANTrainer}.get(model_name)
    if cls is None:
        raise ValueError(f"no trainer for model {model_name!r}")
    return cls(model_name, hyper, device, amp=amp, compile_model=compile_model)
