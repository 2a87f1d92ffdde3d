// The storefront: supabase-js (its UMD build, `window.supabase`) talking to
// clerk-proxy. In a real app the token comes from Clerk
// (`await session.getToken()`); here the sign-in switch picks a demo token.
const { apiUrl, publishableKey, users } = window.STOREFRONT;
let signedIn = ''; // a name from `users`, or '' for signed out

const db = window.supabase.createClient(apiUrl, publishableKey, {
  accessToken: async () => users[signedIn] ?? null,
});

const $ = (id) => document.getElementById(id);
const money = (n) => Number(n).toFixed(2);
const cell = (text) => {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
};
// The work a click started, for anyone waiting on the page (the tests).
window.storefrontBusy = Promise.resolve();
const busy = (work) => (...args) => { window.storefrontBusy = work(...args); };

const button = (label, testid, onClick) => {
  const b = document.createElement('button');
  b.textContent = label;
  b.dataset.testid = testid;
  b.addEventListener('click', busy(onClick));
  return b;
};

function say(text, ok = false) {
  $('message').textContent = text;
  $('message').className = ok ? 'ok' : '';
}

// Every refusal is shown with PostgREST's message, as a user would see it.
function failed(error) {
  if (error) say(error.message);
  return Boolean(error);
}

async function showCatalogue() {
  const { data, error, count } = await db.from('products')
    .select('product_id,name,price,stock_quantity', { count: 'exact' })
    .order('product_id').limit(8);
  if (failed(error)) return;
  $('count').textContent = `${count} products`;
  $('catalogue').replaceChildren(...data.map((p) => {
    const tr = document.createElement('tr');
    tr.dataset.testid = `product-${p.product_id}`;
    tr.append(cell(p.name), cell(money(p.price)), cell(`${p.stock_quantity} in stock`));
    const add = document.createElement('td');
    add.append(button('Add to cart', `add-${p.product_id}`, () => addToCart(p.product_id)));
    tr.append(add);
    return tr;
  }));
}

async function showCart() {
  if (!signedIn) {
    $('cart').replaceChildren(Object.assign(document.createElement('tr'), { textContent: 'Sign in to see your cart.' }));
    return;
  }
  const { data, error } = await db.from('cart')
    .select('cart_id,product_id,quantity,products(name,price)').order('cart_id');
  if (failed(error)) return;
  $('cart').replaceChildren(...data.map((line) => {
    const tr = document.createElement('tr');
    tr.dataset.testid = `cart-line-${line.product_id}`;
    tr.append(cell(line.products.name), cell(`× ${line.quantity}`));
    const actions = document.createElement('td');
    actions.append(
      button('+', `more-${line.product_id}`, () => setQuantity(line, line.quantity + 1)),
      button('−', `less-${line.product_id}`, () => setQuantity(line, line.quantity - 1)),
      button('Remove', `remove-${line.product_id}`, () => removeLine(line)),
    );
    tr.append(actions);
    return tr;
  }));
}

async function showOrders() {
  if (!signedIn) {
    $('orders').textContent = 'Sign in to see your orders.';
    return;
  }
  const { data, error } = await db.from('orders')
    .select('order_id,order_number,status,total_amount,order_items(product_name,quantity)')
    .order('order_id', { ascending: false });
  if (failed(error)) return;
  if (data.length === 0) {
    $('orders').textContent = 'No orders yet.';
    return;
  }
  $('orders').replaceChildren(...data.map((o) => {
    const div = document.createElement('div');
    div.dataset.testid = 'order';
    div.dataset.status = o.status;
    const lines = o.order_items.map((i) => `${i.product_name} × ${i.quantity}`).join(', ');
    div.textContent = `${o.order_number}: ${o.status}, ${money(o.total_amount)} (${lines})`;
    return div;
  }));
}

async function refresh() {
  await Promise.all([showCatalogue(), showCart(), showOrders()]);
}

async function addToCart(product_id) {
  if (!signedIn) return say('Sign in to add to your cart.');
  const { error } = await db.from('cart')
    .upsert({ product_id, quantity: 1 }, { onConflict: 'user_id,product_id,selected_attributes', ignoreDuplicates: true });
  if (!failed(error)) say('Added to your cart.', true);
  await showCart();
}

async function setQuantity(line, quantity) {
  if (quantity < 1) return removeLine(line);
  const { error } = await db.from('cart').update({ quantity }).eq('cart_id', line.cart_id);
  if (!failed(error)) say('Cart updated.', true);
  await showCart();
}

async function removeLine(line) {
  const { error } = await db.from('cart').delete().eq('cart_id', line.cart_id);
  if (!failed(error)) say('Removed from your cart.', true);
  await showCart();
}

async function placeOrder() {
  const { data, error } = await db.rpc('place_order', {
    billing_name: signedIn || 'Visitor', billing_email: `${signedIn.toLowerCase() || 'visitor'}@example.com`, billing_address: { city: 'Lyon' },
  });
  if (!failed(error)) say(`Order ${data.order_number} placed: ${money(data.total_amount)}.`, true);
  await refresh();
}

async function redeem() {
  const pending = await db.from('orders').select('order_id').eq('status', 'pending')
    .order('order_id', { ascending: false }).limit(1).maybeSingle();
  if (failed(pending.error)) return;
  if (!pending.data) return say('No pending order to apply a coupon to.');
  const { data, error } = await db.rpc('redeem_coupon', { code: $('coupon-code').value, order_id: pending.data.order_id });
  if (!failed(error)) say(`Coupon applied: the order now costs ${money(data.total_amount)}.`, true);
  await showOrders();
}

function signIn(name) {
  signedIn = name;
  for (const b of document.querySelectorAll('[data-user]')) b.setAttribute('aria-pressed', String(b.dataset.user === name));
  $('who').textContent = name || 'nobody';
  say('');
  return refresh();
}

for (const b of document.querySelectorAll('[data-user]')) b.addEventListener('click', busy(() => signIn(b.dataset.user)));
$('place-order').addEventListener('click', busy(placeOrder));
$('redeem').addEventListener('click', busy(redeem));
window.storefrontBusy = signIn('');
